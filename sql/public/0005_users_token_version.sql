-- Every access token carries its user's token_version (the "ver" claim)
-- and is accepted only while it matches.  A password reset or a
-- suspension moves the version, so every token issued before stops
-- working at once instead of at its expiry.
ALTER TABLE public.users
    ADD COLUMN token_version integer NOT NULL DEFAULT 0;
