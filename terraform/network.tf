# A private network: Cloud SQL has only a private IP (private services access), and Cloud Run reaches it through
# Direct VPC egress from a dedicated subnet. Public traffic from the functions (providers, Google APIs) leaves
# Cloud Run directly; only private ranges go through the VPC.

resource "google_compute_network" "this" {
  name                    = "${var.name}-vpc"
  auto_create_subnetworks = false
  routing_mode            = "REGIONAL"

  depends_on = [google_project_service.enabled]
}

# Nothing in this network accepts connections: deny all ingress explicitly, and log what is denied.
resource "google_compute_firewall" "deny_ingress" {
  name      = "${var.name}-deny-ingress"
  network   = google_compute_network.this.id
  direction = "INGRESS"
  priority  = 65534

  deny {
    protocol = "all"
  }
  source_ranges = ["0.0.0.0/0"]

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_subnetwork" "run" {
  name                     = "${var.name}-run"
  network                  = google_compute_network.this.id
  region                   = var.region
  ip_cidr_range            = var.run_subnet_cidr
  private_ip_google_access = true

  log_config {
    aggregation_interval = "INTERVAL_5_MIN"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

# The range Google's service producers (Cloud SQL) allocate private addresses from, peered into this network.
resource "google_compute_global_address" "private_services" {
  name          = "${var.name}-private-services"
  network       = google_compute_network.this.id
  purpose       = "VPC_PEERING"
  address_type  = "INTERNAL"
  prefix_length = var.private_services_prefix_length
}

resource "google_service_networking_connection" "private_services" {
  network                 = google_compute_network.this.id
  service                 = "servicenetworking.googleapis.com"
  reserved_peering_ranges = [google_compute_global_address.private_services.name]
}

# Same-project callers of token_fetch with ingress "internal": a request from Cloud Run counts as internal only if
# it enters this VPC, so a caller sends ALL its traffic through a subnet of it (Direct VPC egress, all traffic) with
# Private Google Access on (the run.app address is Google's). All traffic includes the internet, which this subnet
# reaches through Cloud NAT. Only when var.caller_subnet_cidr is set (output `token_fetch_callers`).
resource "google_compute_subnetwork" "callers" {
  count = var.caller_subnet_cidr == null ? 0 : 1

  name                     = "${var.name}-callers"
  network                  = google_compute_network.this.id
  region                   = var.region
  ip_cidr_range            = var.caller_subnet_cidr
  private_ip_google_access = true

  log_config {
    aggregation_interval = "INTERVAL_5_MIN"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_router" "callers" {
  count = var.caller_subnet_cidr == null ? 0 : 1

  name    = "${var.name}-callers"
  network = google_compute_network.this.id
  region  = var.region
}

resource "google_compute_router_nat" "callers" {
  count = var.caller_subnet_cidr == null ? 0 : 1

  name                               = "${var.name}-callers"
  router                             = google_compute_router.callers[0].name
  region                             = var.region
  nat_ip_allocate_option             = "AUTO_ONLY"
  source_subnetwork_ip_ranges_to_nat = "LIST_OF_SUBNETWORKS"

  subnetwork {
    name                    = google_compute_subnetwork.callers[0].id
    source_ip_ranges_to_nat = ["ALL_IP_RANGES"]
  }

  log_config {
    enable = true
    filter = "ERRORS_ONLY"
  }
}
