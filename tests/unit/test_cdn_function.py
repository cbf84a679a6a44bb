"""The optional CDN (EnableCdn) of template.yaml.

CloudFront Functions take their code inline, so the template holds a copy of
cdn/viewer-request.js (which `make node-test` tests); this keeps the two identical and
checks the wiring the linters cannot: the function rewrites the URI before the cache
lookup, the bucket stays private to everyone but this distribution.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
FUNCTION_PATH = ROOT / "cdn" / "viewer-request.js"


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    loaded: dict[str, Any] = cfn_yaml.load(str(TEMPLATE_PATH))
    found: dict[str, Any] = loaded["Resources"]
    return found


def test_the_template_holds_the_function_file_unchanged(resources: dict[str, Any]) -> None:
    function = resources["CdnViewerRequestFunction"]["Properties"]
    assert function["FunctionCode"] == FUNCTION_PATH.read_text(encoding="utf-8")
    assert function["FunctionConfig"]["Runtime"] == "cloudfront-js-2.0"
    # CloudFront Functions' limit on code size.
    assert len(function["FunctionCode"].encode()) <= 10 * 1024


def test_every_cdn_resource_is_conditional(resources: dict[str, Any]) -> None:
    cdn = {rid: r for rid, r in resources.items() if r["Type"].startswith("AWS::CloudFront::")}
    assert set(cdn) == {
        "CdnOriginAccessControl",
        "CdnViewerRequestFunction",
        "CdnCachePolicy",
        "CdnDistribution",
    }
    assert {r.get("Condition") for r in cdn.values()} == {"CdnEnabled"}


def test_the_distribution_rewrites_before_the_cache_and_keys_on_the_uri(
    resources: dict[str, Any],
) -> None:
    config = resources["CdnDistribution"]["Properties"]["DistributionConfig"]
    behavior = config["DefaultCacheBehavior"]
    assert behavior["ViewerProtocolPolicy"] == "redirect-to-https"
    assert behavior["Compress"] is True
    (association,) = behavior["FunctionAssociations"]
    assert association["EventType"] == "viewer-request"
    assert association["FunctionARN"]["Fn::GetAtt"][0] == "CdnViewerRequestFunction"
    assert behavior["CachePolicyId"] == {"Ref": "CdnCachePolicy"}
    key = resources["CdnCachePolicy"]["Properties"]["CachePolicyConfig"][
        "ParametersInCacheKeyAndForwardedToOrigin"
    ]
    # The format is in the rewritten URI; keying on Accept too would only split the cache.
    assert key["HeadersConfig"] == {"HeaderBehavior": "none"}
    assert key["QueryStringsConfig"] == {"QueryStringBehavior": "none"}
    (origin,) = config["Origins"]
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["CdnOriginAccessControl", "Id"]}
    oac = resources["CdnOriginAccessControl"]["Properties"]["OriginAccessControlConfig"]
    assert (oac["OriginAccessControlOriginType"], oac["SigningProtocol"]) == ("s3", "sigv4")


def test_only_the_distribution_may_read_the_output_bucket(resources: dict[str, Any]) -> None:
    statements = resources["OutputBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert any(s.get("Sid") == "TlsOnly" for s in statements)
    (conditional,) = [s["Fn::If"] for s in statements if "Fn::If" in s]
    condition, allow, otherwise = conditional
    assert condition == "CdnEnabled"
    assert otherwise == {"Ref": "AWS::NoValue"}
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allow["Action"] == "s3:GetObject"
    source_arn = allow["Condition"]["StringEquals"]["AWS:SourceArn"]["Fn::Sub"]
    assert source_arn.endswith(":distribution/${CdnDistribution}")
    bucket = resources["OutputBucket"]["Properties"]["PublicAccessBlockConfiguration"]
    assert all(bucket.values())
