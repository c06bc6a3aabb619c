pub mod ipaddr2;
pub mod pgsqlms;
pub mod fence_aws;
pub mod awseip;
pub mod awsvip;
pub mod aws_vpc_move_ip;
pub mod pgsql_state;
