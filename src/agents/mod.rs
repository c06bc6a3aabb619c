pub mod ipaddr2;
pub mod pgsqlms;
