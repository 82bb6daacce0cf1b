"""Small adapters over S3 and DynamoDB: the only modules that call boto3 for the domain."""
