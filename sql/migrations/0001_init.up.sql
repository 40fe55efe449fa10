-- The seven tables of a tenant.  Names carry no schema: the migration
-- runner sets the search path to the schema being built (tenant_template
-- or a tenant's own), so foreign keys point inside that schema.
--
-- Each CREATE is its own statement and every key is a UUID, so the same
-- text also runs on a distributed engine that shards by schema.
-- Deviations from the design guide: timestamptz; NOT NULL on flags with
-- defaults; agents.llm_provider_id is a foreign key (the contract says it
-- must exist in the tenant); crew positions are unique per crew; an index
-- per list order (created_at DESC, id DESC) for cursor pagination.
-- "verbose" is a reserved word in PostgreSQL and is always quoted.

CREATE TABLE llm_providers (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL,
    name varchar(255) NOT NULL,
    provider_type varchar(50) NOT NULL,
    config jsonb NOT NULL,
    priority integer NOT NULL DEFAULT 1,
    is_active boolean NOT NULL DEFAULT true,
    encrypted_credentials bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX idx_llm_providers_tenant_id ON llm_providers (tenant_id);
CREATE INDEX idx_llm_providers_priority ON llm_providers (priority);
CREATE INDEX idx_llm_providers_list ON llm_providers (created_at DESC, id DESC);

CREATE TABLE agents (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL,
    name varchar(255) NOT NULL,
    role varchar(255) NOT NULL,
    goal text NOT NULL,
    backstory text,
    llm_provider_id uuid REFERENCES llm_providers (id) ON DELETE SET NULL,
    allow_delegation boolean NOT NULL DEFAULT false,
    "verbose" boolean NOT NULL DEFAULT true,
    config jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX idx_agents_tenant_id ON agents (tenant_id);
CREATE INDEX idx_agents_llm_provider ON agents (llm_provider_id);
CREATE INDEX idx_agents_list ON agents (created_at DESC, id DESC);

CREATE TABLE crews (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL,
    name varchar(255) NOT NULL,
    description text,
    process varchar(50) NOT NULL DEFAULT 'sequential'
        CHECK (process IN ('sequential', 'hierarchical')),
    "verbose" boolean NOT NULL DEFAULT true,
    config jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX idx_crews_tenant_id ON crews (tenant_id);
CREATE INDEX idx_crews_list ON crews (created_at DESC, id DESC);

CREATE TABLE crew_agents (
    crew_id uuid NOT NULL REFERENCES crews (id) ON DELETE CASCADE,
    agent_id uuid NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    position integer NOT NULL CHECK (position >= 0),
    PRIMARY KEY (crew_id, agent_id),
    CONSTRAINT crew_agents_position_unique UNIQUE (crew_id, position)
        DEFERRABLE INITIALLY IMMEDIATE
);

CREATE INDEX idx_crew_agents_agent_id ON crew_agents (agent_id);

CREATE TABLE flows (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL,
    name varchar(255) NOT NULL,
    description text,
    definition jsonb NOT NULL,
    is_active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX idx_flows_tenant_id ON flows (tenant_id);
CREATE INDEX idx_flows_is_active ON flows (is_active);
CREATE INDEX idx_flows_list ON flows (created_at DESC, id DESC);

CREATE TABLE executions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL,
    flow_id uuid NOT NULL REFERENCES flows (id),
    user_id uuid NOT NULL,
    status varchar(50) NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'succeeded', 'failed',
                          'cancelled')),
    inputs jsonb,
    outputs jsonb,
    error text,
    started_at timestamptz,
    completed_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX idx_executions_tenant_id ON executions (tenant_id);
CREATE INDEX idx_executions_flow_id ON executions (flow_id);
CREATE INDEX idx_executions_status ON executions (status);
CREATE INDEX idx_executions_created_at ON executions (created_at DESC, id DESC);

CREATE TABLE tools (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL,
    name varchar(255) NOT NULL,
    description text,
    docker_image varchar(255) NOT NULL,
    schema jsonb NOT NULL,
    is_active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX idx_tools_tenant_id ON tools (tenant_id);
CREATE INDEX idx_tools_is_active ON tools (is_active);
CREATE INDEX idx_tools_list ON tools (created_at DESC, id DESC);
