-- Every refused message, once per source position, written in the same transaction as the
-- batch's results. The dead-letter topic carries the original bytes for reprocessing; this
-- table lets people ask why messages were refused.
CREATE TABLE IF NOT EXISTS dead_letters (
    source_topic     text        NOT NULL,
    source_partition integer     NOT NULL,
    source_offset    bigint      NOT NULL,
    reason           text        NOT NULL,
    detail           text        NOT NULL,
    original_value   bytea,                 -- at most the first 4 KiB
    original_size    integer     NOT NULL,
    failed_at        timestamptz NOT NULL,
    PRIMARY KEY (source_topic, source_partition, source_offset)
);
CREATE INDEX IF NOT EXISTS dead_letters_failed_at_idx ON dead_letters (failed_at DESC);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sentiment_writer') THEN
        GRANT SELECT, INSERT ON dead_letters TO sentiment_writer;
    END IF;
END
$$;
