variable "region" {
  description = "AWS region for every resource."
  type        = string
  default     = "eu-central-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as eu-central-1."
  }
}

variable "availability_zone_suffixes" {
  description = "The three availability zones of the VPC, as suffixes of the region name (a, b, c: eu-central-1a, ...)."
  type        = list(string)
  default     = ["a", "b", "c"]

  validation {
    condition     = length(var.availability_zone_suffixes) == 3 && length(distinct(var.availability_zone_suffixes)) == 3 && alltrue([for suffix in var.availability_zone_suffixes : can(regex("^[a-z]$", suffix))])
    error_message = "availability_zone_suffixes must hold exactly three distinct letters."
  }
}

variable "environment" {
  description = "Environment name, used in resource names and tags (production, staging)."
  type        = string
  default     = "production"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.environment))
    error_message = "environment must be 2-21 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC; split into 3 public and 3 private subnets."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.vpc_cidr)) && tonumber(split("/", var.vpc_cidr)[1]) <= 20
    error_message = "vpc_cidr must be an IPv4 CIDR block of /20 or larger."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all private subnets (cheaper) instead of one per AZ (survives an AZ outage)."
  type        = bool
  default     = false
}

variable "kubernetes_version" {
  description = "EKS Kubernetes minor version."
  type        = string
  default     = "1.33"

  validation {
    condition     = can(regex("^1\\.[0-9]{2}$", var.kubernetes_version))
    error_message = "kubernetes_version must look like 1.33."
  }
}

variable "cluster_endpoint_public_access_cidrs" {
  description = "CIDR blocks allowed to reach the EKS API endpoint from the internet (e.g. the operator's IP /32). Empty: private endpoint only."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for cidr in var.cluster_endpoint_public_access_cidrs : can(cidrnetmask(cidr)) && cidr != "0.0.0.0/0"])
    error_message = "Every entry must be an IPv4 CIDR block, and 0.0.0.0/0 is not allowed."
  }
}

variable "cluster_admin_principal_arns" {
  description = "IAM principals (users or roles) granted cluster-admin through EKS access entries, besides the identity that creates the cluster."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.cluster_admin_principal_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:(user|role)/.+", arn))])
    error_message = "Every entry must be an IAM user or role ARN."
  }
}

variable "node_instance_types" {
  description = "EC2 instance types of the managed node group (first available wins)."
  type        = list(string)
  default     = ["m7i.large", "m6i.large"]

  validation {
    condition     = length(var.node_instance_types) > 0
    error_message = "At least one instance type is required."
  }
}

variable "node_group_size" {
  description = "Managed node group size: min, desired and max node counts."
  type = object({
    min     = number
    desired = number
    max     = number
  })
  default = { min = 3, desired = 3, max = 6 }

  validation {
    condition     = var.node_group_size.min >= 1 && var.node_group_size.min <= var.node_group_size.desired && var.node_group_size.desired <= var.node_group_size.max
    error_message = "node_group_size needs 1 <= min <= desired <= max."
  }
}

variable "node_disk_size_gib" {
  description = "Root EBS volume size of each node, in GiB."
  type        = number
  default     = 50

  validation {
    condition     = var.node_disk_size_gib >= 20 && var.node_disk_size_gib <= 1000
    error_message = "node_disk_size_gib must be between 20 and 1000."
  }
}

variable "db_instance_class" {
  description = "RDS instance class of the Postgres app database."
  type        = string
  default     = "db.t4g.medium"

  validation {
    condition     = startswith(var.db_instance_class, "db.")
    error_message = "db_instance_class must be an RDS class such as db.t4g.medium."
  }
}

variable "db_engine_version" {
  description = "Postgres major version of the RDS instance (minor upgrades are applied automatically)."
  type        = string
  default     = "17"

  validation {
    condition     = can(regex("^1[4-9]$", var.db_engine_version))
    error_message = "db_engine_version must be a Postgres major version from 14 to 19."
  }
}

variable "db_allocated_storage_gib" {
  description = "Initial RDS storage, in GiB (storage autoscaling grows it up to db_max_allocated_storage_gib)."
  type        = number
  default     = 50

  validation {
    condition     = var.db_allocated_storage_gib >= 20
    error_message = "db_allocated_storage_gib must be at least 20."
  }
}

variable "db_max_allocated_storage_gib" {
  description = "Upper bound of RDS storage autoscaling, in GiB."
  type        = number
  default     = 500

  validation {
    condition     = var.db_max_allocated_storage_gib >= var.db_allocated_storage_gib
    error_message = "db_max_allocated_storage_gib must be at least db_allocated_storage_gib."
  }
}

variable "db_multi_az" {
  description = "Run RDS with a synchronous standby in another AZ (automatic failover)."
  type        = bool
  default     = true
}

variable "db_iam_authentication" {
  description = "Allow IAM database authentication on RDS (password authentication keeps working)."
  type        = bool
  default     = true
}

variable "db_backup_retention_days" {
  description = "Days RDS keeps automated backups (point-in-time recovery window)."
  type        = number
  default     = 14

  validation {
    condition     = var.db_backup_retention_days >= 7 && var.db_backup_retention_days <= 35
    error_message = "db_backup_retention_days must be between 7 and 35."
  }
}

variable "backup_retention_days" {
  description = "Days objects under backups/ stay in the backup bucket before they expire."
  type        = number
  default     = 30

  validation {
    condition     = var.backup_retention_days >= 1
    error_message = "backup_retention_days must be at least 1."
  }
}

variable "log_retention_days" {
  description = "CloudWatch retention of EKS control-plane and VPC flow logs, in days."
  type        = number
  default     = 365

  validation {
    condition     = contains([365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a CloudWatch retention value of at least 365 days."
  }
}

variable "app_namespace" {
  description = "Kubernetes namespace of the Ursa workloads."
  type        = string
  default     = "ursa"
}

variable "backup_service_accounts" {
  description = "Kubernetes service accounts in app_namespace that may assume the backup role (IRSA): the Postgres backup CronJob and ClickHouse."
  type        = list(string)
  default     = ["backup", "clickhouse"]

  validation {
    condition     = alltrue([for name in var.backup_service_accounts : can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", name))])
    error_message = "Every entry must be a Kubernetes service account name."
  }
}

variable "ecr_keep_images" {
  description = "How many tagged images the ECR lifecycle policy keeps."
  type        = number
  default     = 50

  validation {
    condition     = var.ecr_keep_images >= 5
    error_message = "ecr_keep_images must be at least 5 (rollbacks need old images)."
  }
}

variable "github_repository" {
  description = "GitHub repository (owner/name) whose main-branch workflows may push to the ECR repository through OIDC. Empty: no push role."
  type        = string
  default     = ""

  validation {
    condition     = var.github_repository == "" || can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository must be empty or owner/name."
  }
}
