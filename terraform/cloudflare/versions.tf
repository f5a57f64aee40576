terraform {
  required_version = ">= 1.6"

  required_providers {
    cloudflare = {
      source  = "cloudflare/cloudflare"
      version = "~> 5.19"
    }
  }

  # Remote state in the same S3 bucket and DynamoDB lock table as terraform/aws, under
  # its own key (see terraform/README.md). Uncomment, then `terraform init -migrate-state`.
  #
  # backend "s3" {
  #   bucket         = "ursa-terraform-state"
  #   key            = "cloudflare/terraform.tfstate"
  #   region         = "eu-central-1"
  #   encrypt        = true
  #   dynamodb_table = "ursa-terraform-locks"
  # }
}

# The API token comes from CLOUDFLARE_API_TOKEN (permissions: Zone DNS Edit, Zone Settings Edit
# on this zone only); it never appears in the configuration or the state.
provider "cloudflare" {}
