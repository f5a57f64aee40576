terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }

  # Remote state: an S3 bucket (versioned, SSE-KMS) with a DynamoDB table for locking.
  # Create both once by hand (see terraform/README.md), then uncomment and run
  # `terraform init -migrate-state`. Left commented so `init -backend=false` and a
  # first local apply work without them.
  #
  # backend "s3" {
  #   bucket         = "ursa-terraform-state"
  #   key            = "aws/terraform.tfstate"
  #   region         = "eu-central-1"
  #   encrypt        = true
  #   dynamodb_table = "ursa-terraform-locks"
  # }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project     = "ursa"
      Environment = var.environment
      ManagedBy   = "terraform"
    }
  }
}
