pub mod ipaddr2;
