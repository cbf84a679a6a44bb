// Prism CDN viewer-request function (CloudFront Functions, runtime cloudfront-js-2.0).
//
// Serves the best image format a browser accepts, AVIF > WebP > JPEG, for variant
// families rendered in all three formats. A request for a format-neutral key ending in
// ".auto" is rewritten before the cache lookup, so the cache key (the URI) differs per
// format and a cached WebP is never served to a browser that did not accept it:
//
//   GET /photos/cat_web.auto   Accept: image/avif,...  ->  /photos/cat_web-avif.avif
//                              Accept: image/webp,...  ->  /photos/cat_web-webp.webp
//                              anything else           ->  /photos/cat_web-jpeg.jpg
//
// Only explicit image/avif and image/webp entries with q > 0 count (image/* and */* do
// not: old Safari sends image/* without decoding AVIF); the higher q wins, AVIF on a tie.
// Every other URI is left untouched. template.yaml holds a copy of this file
// (CdnViewerRequestFunction); tests/unit/test_cdn_function.py keeps the two identical.

var FORMATS = [
  { type: 'image/avif', suffix: '-avif.avif' },
  { type: 'image/webp', suffix: '-webp.webp' }
];
var FALLBACK_SUFFIX = '-jpeg.jpg';
var AUTO = '.auto';

// The q-value of each media type listed in an Accept header (lower-cased types).
function acceptedQualities(header) {
  var qualities = {};
  var entries = header.split(',');
  for (var i = 0; i < entries.length; i++) {
    var params = entries[i].split(';');
    var type = params[0].trim().toLowerCase();
    if (!type) {
      continue;
    }
    var q = 1;
    for (var j = 1; j < params.length; j++) {
      var param = params[j].trim().toLowerCase();
      if (param.indexOf('q=') === 0) {
        q = parseFloat(param.substring(2));
        if (isNaN(q)) {
          q = 0;
        }
      }
    }
    // A type listed twice keeps its best q-value.
    if (!(type in qualities) || q > qualities[type]) {
      qualities[type] = q;
    }
  }
  return qualities;
}

// The key suffix ("-avif.avif", "-webp.webp" or "-jpeg.jpg") for an Accept header.
function bestSuffix(header) {
  var qualities = acceptedQualities(header || '');
  var best = FALLBACK_SUFFIX;
  var bestQ = 0;
  for (var i = 0; i < FORMATS.length; i++) {
    var q = qualities[FORMATS[i].type] || 0;
    if (q > bestQ) {
      best = FORMATS[i].suffix;
      bestQ = q;
    }
  }
  return best;
}

function handler(event) {
  var request = event.request;
  var uri = request.uri;
  var name = uri.substring(uri.lastIndexOf('/') + 1);
  if (name.length <= AUTO.length || name.substring(name.length - AUTO.length) !== AUTO) {
    return request;
  }
  var header = request.headers.accept;
  var accept = '';
  if (header && header.multiValue) {
    // A header sent several times: its values, as one list.
    accept = header.multiValue.map(function (v) { return v.value; }).join(',');
  } else if (header) {
    accept = header.value;
  }
  request.uri = uri.substring(0, uri.length - AUTO.length) + bestSuffix(accept);
  return request;
}
