# DNS and zone settings of Ursa's public hosts. Both records are proxied: visitors and
# trackers talk to Cloudflare, which talks to the origin load balancer over TLS with a
# certificate it verifies (ssl = strict). The origin's certificates come from cert-manager
# with a DNS-01 challenge, which works behind the proxy and "always use HTTPS".

locals {
  zone_settings = {
    ssl                      = "strict"
    always_use_https         = "on"
    min_tls_version          = "1.2"
    tls_1_3                  = "on"
    automatic_https_rewrites = "on"
  }
}

resource "cloudflare_dns_record" "host" {
  for_each = var.hostnames

  zone_id = var.zone_id
  name    = each.value
  type    = "CNAME"
  content = var.origin_hostname
  proxied = true
  ttl     = 1 # automatic: required for proxied records
  comment = "Ursa ${each.key} host (managed by Terraform)"
}

resource "cloudflare_zone_setting" "this" {
  for_each = local.zone_settings

  zone_id    = var.zone_id
  setting_id = each.key
  value      = each.value
}
