-- The master key canary: one small value sealed under the master key
-- that sealed the tenants' credentials (lib/seal.h).  crewd refuses to
-- start when none of its configured key files opens it, so a wrong or
-- replaced key file is noticed before anything is sealed under it.
-- Written by "crewctl keys create" and re-sealed by "crewctl keys rotate".
-- One row at most: the singleton column can only be true.

CREATE TABLE public.master_key_canary (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    sealed bytea NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
