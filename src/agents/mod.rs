pub mod ipaddr2;
pub mod pgsqlms;
pub mod fence_aws;
