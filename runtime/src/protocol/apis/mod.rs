//! One file per Kafka API. Each exposes `handle(broker, ctx, request) -> response`.
//! `dispatch` (in this file) routes a decoded request to its handler.

pub mod api_versions;
pub mod metadata;
pub mod produce;
pub mod fetch;
pub mod list_offsets;
pub mod create_topics;
pub mod delete_topics;
pub mod create_partitions;
pub mod describe_configs;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod describe_cluster;
pub mod delete_records;
pub mod find_coordinator;
pub mod join_group;
pub mod sync_group;
pub mod heartbeat;
pub mod leave_group;
pub mod offset_commit;
pub mod offset_fetch;
pub mod list_groups;
pub mod describe_groups;
pub mod delete_groups;
