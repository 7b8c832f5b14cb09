"""``kendra-ingest``: the command line ingesting teams submit jobs with, against a deployed stack.

It is not part of the Lambda archive (``functions/``): it only talks to S3, through the stack's outputs
(``pulumi stack output --json``, or the file ``python -m sandbox serve`` writes).

Example::

    kendra-ingest submit ./phonebook --stack-outputs outputs.json --wait
    kendra-ingest status phonebook-2025-10-05 --stack-outputs outputs.json
    kendra-ingest report phonebook-2025-10-05 --stack-outputs outputs.json --csv > failures.csv
"""
