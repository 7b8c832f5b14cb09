"""Secure defaults and service limits, in one place, so every component applies the same ones."""

from __future__ import annotations

#: S3: incomplete multipart uploads cost storage and never complete on their own.
ABORT_INCOMPLETE_UPLOAD_DAYS = 7
#: S3: how long an overwritten or deleted version of a report stays recoverable.
NONCURRENT_VERSION_DAYS = 30
#: S3: how long server access logs are kept (accessLogs).
ACCESS_LOG_EXPIRATION_DAYS = 365
#: The reports-bucket prefix of archived manifests (``_archive/<jobId>/manifest.json``).
ARCHIVE_PREFIX = "_archive/"

#: SQS: the longest retention (14 days), for dead-letter queues, so a failure is never lost unread.
DLQ_RETENTION_SECONDS = 14 * 24 * 3600
#: SQS: retention of the work queues, the longest too: a FIFO message that expires is dropped without
#: reaching its dead-letter queue, so a part must never outlive its queue (the watchdog aborts a job
#: that stopped moving long before).
QUEUE_RETENTION_SECONDS = 14 * 24 * 3600
#: The reports-bucket prefix of a run's work files (plan, parts, results, verification state).
WORK_PREFIX = "_work/"
#: Work files expire after this many days: a run needs them only until its report is written (at most a
#: day for option sfn, the watchdog's abort window for option sqs), the report keeps what matters.
WORK_EXPIRATION_DAYS = 30
#: SQS: receives before a message goes to its dead-letter queue.
MAX_RECEIVE_COUNT = 5
#: SQS + Lambda: visibility timeout >= 6 x function timeout (AWS guidance for event source mappings).
VISIBILITY_TIMEOUT_FACTOR = 6
#: SQS + Lambda: a FIFO event source mapping takes at most 10 messages per batch.
MAX_FIFO_BATCH_SIZE = 10
#: SQS: how long a KMS data key is reused (the default; fewer KMS calls).
KMS_DATA_KEY_REUSE_SECONDS = 300

#: SNS: the AWS managed key, used when encryption=s3.
SNS_MANAGED_KEY = "alias/aws/sns"

#: CloudWatch: every alarm looks at 5-minute sums.
ALARM_PERIOD_SECONDS = 300
#: CloudWatch: the dashboard's graphs plot 5-minute points.
DASHBOARD_PERIOD_SECONDS = 300
#: An SQS message older than this means the workers are stuck or starved.
OLDEST_MESSAGE_AGE_ALARM_SECONDS = 3600

#: KMS: days a deleted key stays recoverable.
KMS_DELETION_WINDOW_DAYS = 30
