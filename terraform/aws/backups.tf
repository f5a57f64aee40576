# Backup bucket: the Postgres and ClickHouse backup CronJobs write under backups/, where
# objects expire after backup_retention_days. Private, SSE-KMS, versioned, TLS only, and
# its access is logged to a second bucket. The backup CronJobs and ClickHouse (which runs
# `BACKUP ... TO S3` itself) assume the backup role through IRSA (a service-account
# annotation): no static AWS keys exist anywhere.

locals {
  backups_bucket = "${local.name}-backups-${local.account_id}"
  logs_bucket    = "${local.name}-s3-access-logs-${local.account_id}"
  backups_prefix = "backups/"
}

resource "aws_s3_bucket" "backups" {
  #checkov:skip=CKV_AWS_144:Backups already are the second copy of RDS and ClickHouse data; replicating them to a second region doubles storage cost for a single-region service.
  bucket = local.backups_bucket
}

resource "aws_s3_bucket_server_side_encryption_configuration" "backups" {
  bucket = aws_s3_bucket.backups.id

  rule {
    bucket_key_enabled = true

    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.this["backups"].arn
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "backups" {
  bucket = aws_s3_bucket.backups.id

  rule {
    id     = "expire-backups"
    status = "Enabled"

    filter {
      prefix = local.backups_prefix
    }

    expiration {
      days = var.backup_retention_days
    }

    # Versioning keeps an expired object as a noncurrent version: drop those a week later.
    noncurrent_version_expiration {
      noncurrent_days = 7
    }
  }

  rule {
    id     = "clean-up"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }

    expiration {
      expired_object_delete_marker = true
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}

resource "aws_s3_bucket_logging" "backups" {
  bucket        = aws_s3_bucket.backups.id
  target_bucket = aws_s3_bucket.access_logs.id
  target_prefix = "${local.backups_bucket}/"
}

# --- Access log bucket ----------------------------------------------------------------

resource "aws_s3_bucket" "access_logs" {
  #checkov:skip=CKV_AWS_18:This bucket is the access-log target; logging it into itself would log its own log writes forever.
  #checkov:skip=CKV_AWS_144:Access logs are an audit trail of this region's buckets; a copy in another region adds cost, not recovery.
  #checkov:skip=CKV_AWS_145:S3 server access logging only delivers to buckets encrypted with SSE-S3 (AES256), not SSE-KMS.
  bucket = local.logs_bucket
}

resource "aws_s3_bucket_server_side_encryption_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  rule {
    id     = "expire-logs"
    status = "Enabled"

    filter {}

    expiration {
      days = var.log_retention_days
    }

    noncurrent_version_expiration {
      noncurrent_days = 7
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}

data "aws_iam_policy_document" "access_logs_bucket" {
  source_policy_documents = [data.aws_iam_policy_document.tls_only["access_logs"].json]

  statement {
    sid       = "S3ServerAccessLogs"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.access_logs.arn}/*"]

    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# --- Baseline of both buckets: private, owner-enforced, versioned, TLS only ------------

locals {
  buckets = {
    backups     = aws_s3_bucket.backups
    access_logs = aws_s3_bucket.access_logs
  }
  bucket_policies = {
    backups     = data.aws_iam_policy_document.tls_only["backups"].json
    access_logs = data.aws_iam_policy_document.access_logs_bucket.json
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  for_each = local.buckets

  bucket                  = each.value.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "this" {
  for_each = local.buckets

  bucket = each.value.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "this" {
  for_each = local.buckets

  bucket = each.value.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_notification" "this" {
  for_each = local.buckets

  bucket      = each.value.id
  eventbridge = true
}

data "aws_iam_policy_document" "tls_only" {
  for_each = local.buckets

  dynamic "statement" {
    for_each = {
      DenyInsecureTransport = { test = "Bool", variable = "aws:SecureTransport", value = "false" }
      DenyOldTls            = { test = "NumericLessThan", variable = "s3:TlsVersion", value = "1.2" }
    }

    content {
      sid       = statement.key
      effect    = "Deny"
      actions   = ["s3:*"]
      resources = [each.value.arn, "${each.value.arn}/*"]

      principals {
        type        = "*"
        identifiers = ["*"]
      }

      condition {
        test     = statement.value.test
        variable = statement.value.variable
        values   = [statement.value.value]
      }
    }
  }
}

resource "aws_s3_bucket_policy" "this" {
  for_each = local.bucket_policies

  bucket = local.buckets[each.key].id
  policy = each.value

  depends_on = [aws_s3_bucket_public_access_block.this]
}

# --- Role of the backup CronJobs (IRSA) --------------------------------------------------

data "aws_iam_policy_document" "backup_writer" {
  statement {
    sid       = "ListBackups"
    actions   = ["s3:ListBucket", "s3:ListBucketMultipartUploads", "s3:GetBucketLocation"]
    resources = [aws_s3_bucket.backups.arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["", local.backups_prefix, "${local.backups_prefix}*"]
    }
  }

  statement {
    sid = "ReadWriteBackups"
    actions = [
      "s3:PutObject",
      "s3:GetObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = ["${aws_s3_bucket.backups.arn}/${local.backups_prefix}*"]
  }

  statement {
    sid       = "UseBackupKey"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt", "kms:DescribeKey"]
    resources = [aws_kms_key.this["backups"].arn]
  }
}

# Only the listed service accounts of the app namespace, with a token for STS.
data "aws_iam_policy_document" "backup_assume" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [aws_iam_openid_connect_provider.eks.arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer}:sub"
      values   = [for account in var.backup_service_accounts : "system:serviceaccount:${var.app_namespace}:${account}"]
    }
  }
}

resource "aws_iam_role" "backup" {
  name               = "${local.name}-backups"
  description        = "Assumed through IRSA by the backup service accounts of namespace ${var.app_namespace}"
  assume_role_policy = data.aws_iam_policy_document.backup_assume.json
}

resource "aws_iam_role_policy" "backup" {
  name   = "write-backups"
  role   = aws_iam_role.backup.id
  policy = data.aws_iam_policy_document.backup_writer.json
}
