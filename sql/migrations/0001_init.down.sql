-- Undoes 0001_init.up.sql: drops the seven tables of a tenant.
DROP TABLE tools;
DROP TABLE executions;
DROP TABLE flows;
DROP TABLE crew_agents;
DROP TABLE crews;
DROP TABLE agents;
DROP TABLE llm_providers;
