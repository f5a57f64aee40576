# One customer-managed key per kind of data, rotated yearly.
locals {
  kms_keys = {
    eks     = "Envelope encryption of Kubernetes secrets in ${local.name}"
    rds     = "RDS storage, backups, Performance Insights and the master password of ${local.name}"
    ecr     = "Container images in the ECR repository of ${local.name}"
    backups = "Backup objects in the backup bucket of ${local.name}"
    logs    = "CloudWatch log groups of ${local.name} (EKS control plane, VPC flow logs)"
  }
}

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:Key policy: the resource "*" is this key only, and the account-root statement delegates to IAM (AWS default key policy).
  #checkov:skip=CKV_AWS_111:Key policy: the resource "*" is this key only; writes are constrained by the principals and conditions of each statement.
  #checkov:skip=CKV_AWS_356:Key policy: the resource "*" is this key only (a key policy cannot name other resources).
  for_each = local.kms_keys

  statement {
    sid       = "AccountAdministration"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  dynamic "statement" {
    for_each = each.key == "logs" ? [1] : []

    content {
      sid       = "CloudWatchLogs"
      actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
      resources = ["*"]

      principals {
        type        = "Service"
        identifiers = ["logs.${var.region}.amazonaws.com"]
      }

      condition {
        test     = "ArnLike"
        variable = "kms:EncryptionContext:aws:logs:arn"
        values   = ["arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:*"]
      }
    }
  }
}

resource "aws_kms_key" "this" {
  for_each = local.kms_keys

  description             = each.value
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms[each.key].json
}

resource "aws_kms_alias" "this" {
  for_each = local.kms_keys

  name          = "alias/${local.name}-${each.key}"
  target_key_id = aws_kms_key.this[each.key].key_id
}
