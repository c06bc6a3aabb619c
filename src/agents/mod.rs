pub mod aws_vpc_move_ip;
pub mod awseip;
pub mod awsvip;
pub mod fence_aws;
pub mod ipaddr2;
pub mod pgsql_state;
pub mod pgsqlms;
