"""Recovery plans, drills, failover and failback, with RTO/RPO measured against each system's targets."""
