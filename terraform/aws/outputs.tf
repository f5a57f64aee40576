output "region" {
  description = "AWS region of the deployment."
  value       = var.region
}

output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "private_subnet_ids" {
  description = "Private subnets (one per AZ) of the EKS nodes and RDS."
  value       = aws_subnet.private[*].id
}

output "public_subnet_ids" {
  description = "Public subnets (one per AZ) of the load balancers and NAT gateways."
  value       = aws_subnet.public[*].id
}

output "cluster_name" {
  description = "Name of the EKS cluster."
  value       = aws_eks_cluster.this.name
}

output "cluster_endpoint" {
  description = "Kubernetes API endpoint of the EKS cluster."
  value       = aws_eks_cluster.this.endpoint
}

output "cluster_certificate_authority" {
  description = "Base64 CA certificate of the EKS API."
  value       = aws_eks_cluster.this.certificate_authority[0].data
}

output "kubeconfig_command" {
  description = "Command that writes a kubeconfig entry for the cluster."
  value       = "aws eks update-kubeconfig --region ${var.region} --name ${aws_eks_cluster.this.name}"
}

output "database_endpoint" {
  description = "host:port of the RDS Postgres instance (DATABASE_URL host)."
  value       = aws_db_instance.this.endpoint
}

output "database_name" {
  description = "Database name and master user of the RDS instance."
  value       = aws_db_instance.this.db_name
}

output "database_master_secret_arn" {
  description = "Secrets Manager secret holding the RDS master username and password."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}

output "ecr_repository_url" {
  description = "Repository URL the CI pushes the Ursa image to."
  value       = aws_ecr_repository.ursa.repository_url
}

output "backup_bucket" {
  description = "S3 bucket of the backup CronJobs (objects under backups/)."
  value       = aws_s3_bucket.backups.bucket
}

output "backup_role_arn" {
  description = "IAM role of the backup service accounts: their eks.amazonaws.com/role-arn annotation."
  value       = aws_iam_role.backup.arn
}

output "github_push_role_arn" {
  description = "Role GitHub Actions assumes to push images (aws-actions/configure-aws-credentials role-to-assume); null without github_repository."
  value       = one(aws_iam_role.github_push[*].arn)
}
