-- Runs once, on the first start with an empty data volume, as POSTGRES_USER (the owner).
CREATE DATABASE reception;
CREATE DATABASE workorders;
CREATE DATABASE followup;
CREATE DATABASE records;
