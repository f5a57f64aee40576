variable "zone_id" {
  description = "Cloudflare zone ID of the domain Ursa is served from (32 hex characters, on the zone's overview page)."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-f]{32}$", var.zone_id))
    error_message = "zone_id must be 32 lowercase hex characters."
  }
}

variable "hostnames" {
  description = "Fully qualified public host names: app (dashboard, API; e.g. ursa.example.com) and ingest (/js/script.js and /api/event; e.g. t.ursa.example.com)."
  type = object({
    app    = string
    ingest = string
  })

  validation {
    condition     = alltrue([for host in values(var.hostnames) : can(regex("^([a-z0-9]([-a-z0-9]*[a-z0-9])?\\.)+[a-z]{2,}$", host))]) && var.hostnames.app != var.hostnames.ingest
    error_message = "hostnames.app and hostnames.ingest must be two different lowercase fully qualified host names."
  }
}

variable "origin_hostname" {
  description = "DNS name of the cluster's public load balancer (the Gateway's address, e.g. k8s-...elb.eu-central-1.amazonaws.com) that both hosts point to."
  type        = string

  validation {
    condition     = can(regex("^([a-z0-9]([-a-z0-9]*[a-z0-9])?\\.)+[a-z]{2,}$", var.origin_hostname))
    error_message = "origin_hostname must be a lowercase fully qualified host name."
  }
}
