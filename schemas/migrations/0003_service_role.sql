-- A role for the consumer that can write and read results and nothing else.
-- Grant it to the service's login user: GRANT sentiment_writer TO <user>;
-- Roles are cluster-wide, so creation tolerates an existing role and a migrating user
-- without CREATEROLE (the grants are then left to the administrator).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sentiment_writer') THEN
        CREATE ROLE sentiment_writer NOLOGIN;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'no CREATEROLE privilege: create role sentiment_writer by hand';
END
$$;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sentiment_writer') THEN
        REVOKE ALL ON results FROM sentiment_writer;
        GRANT SELECT, INSERT ON results TO sentiment_writer;
        GRANT SELECT ON label_counts_per_minute, latest_results, sentiment_share_per_hour
            TO sentiment_writer;
        GRANT SELECT ON schema_migrations TO sentiment_writer;
    END IF;
END
$$;
