"""Small adapters over S3, SQS, DynamoDB and SSM; the only code in ``prism`` that talks to AWS."""
