"""kendra_ingest: the runtime library the Lambda handlers call.

The data path, one module per step:
  S3 keys --listing--> objects --pairing--> pairs --metadata--> documents --packing--> parts
  parts --kendra--> outcomes --reports--> failure rows, failures.csv, summary.json

State lives in DynamoDB (``lock``: one job per source at a time; ``ledger``: fingerprints and the
inventory of what is indexed). ``settings`` is the Lambdas' environment contract.
"""
