"""Everything that touches ClickHouse: the gateway, the schema runner, named queries, ingestion."""
