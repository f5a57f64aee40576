# Shared names and lookups. Each concern lives in its own file: network.tf (VPC),
# kms.tf (keys), iam.tf (trust policies of AWS services), eks.tf (cluster and nodes),
# rds.tf (Postgres), ecr.tf (images), backups.tf (backup bucket and the role the backup
# CronJobs assume).

# The three AZs are named explicitly: the set never grows when AWS adds a zone.
data "aws_availability_zones" "selected" {
  state = "available"

  filter {
    name   = "zone-name"
    values = [for suffix in var.availability_zone_suffixes : "${var.region}${suffix}"]
  }

  lifecycle {
    postcondition {
      condition     = length(self.names) == 3
      error_message = "All three availability zones in availability_zone_suffixes must exist and be available in the region."
    }
  }
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  name       = "ursa-${var.environment}"
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  azs        = data.aws_availability_zones.selected.names

  # /20 subnets: public ones first (load balancers, NAT), private ones from the middle.
  public_subnet_cidrs  = [for index in range(3) : cidrsubnet(var.vpc_cidr, 4, index)]
  private_subnet_cidrs = [for index in range(3) : cidrsubnet(var.vpc_cidr, 4, index + 8)]
}

# Every volume created in this account and region is encrypted (nodes, EBS CSI volumes).
resource "aws_ebs_encryption_by_default" "this" {
  enabled = true
}
