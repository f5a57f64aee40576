# Trust policies of the roles AWS services assume. pin_account adds confused-deputy
# protection (aws:SourceAccount) where the service sets that key; tag_session where the
# service tags its sessions (EKS, Pod Identity).
locals {
  service_roles = {
    eks_cluster    = { service = "eks.amazonaws.com", tag_session = true, pin_account = false }
    eks_node       = { service = "ec2.amazonaws.com", tag_session = false, pin_account = false }
    pods           = { service = "pods.eks.amazonaws.com", tag_session = true, pin_account = true }
    flow_logs      = { service = "vpc-flow-logs.amazonaws.com", tag_session = false, pin_account = true }
    rds_monitoring = { service = "monitoring.rds.amazonaws.com", tag_session = false, pin_account = true }
  }
}

data "aws_iam_policy_document" "service_assume" {
  for_each = local.service_roles

  statement {
    actions = each.value.tag_session ? ["sts:AssumeRole", "sts:TagSession"] : ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = [each.value.service]
    }

    dynamic "condition" {
      for_each = each.value.pin_account ? [local.account_id] : []

      content {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [condition.value]
      }
    }
  }
}
