output "hostnames" {
  description = "Proxied host names by role (app, ingest)."
  value       = { for role, record in cloudflare_dns_record.host : role => record.name }
}
