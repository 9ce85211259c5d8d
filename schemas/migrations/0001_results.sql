-- One row per post: re-processing a post never adds a second row (primary key on post_id).
CREATE TABLE IF NOT EXISTS results (
    post_id              text        PRIMARY KEY,
    text                 text        NOT NULL,
    label                text        NOT NULL CHECK (label IN ('negative', 'neutral', 'positive')),
    positive_probability real        NOT NULL CHECK (positive_probability BETWEEN 0 AND 1),
    confidence           real        NOT NULL CHECK (confidence BETWEEN 0 AND 1),
    model_version        text        NOT NULL,
    cached               boolean     NOT NULL DEFAULT false,
    author               text,
    source               text,
    lang                 text,
    metadata             jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at           timestamptz,                        -- when the post was written
    produced_at          timestamptz,                        -- Kafka timestamp of the message
    processed_at         timestamptz NOT NULL,               -- when the consumer classified it
    stored_at            timestamptz NOT NULL DEFAULT now(), -- when the row was committed
    kafka_topic          text,
    kafka_partition      integer,
    kafka_offset         bigint
);

-- What people ask: recent results, by label, by source or author, by time range.
CREATE INDEX IF NOT EXISTS results_processed_at_idx ON results (processed_at DESC);
CREATE INDEX IF NOT EXISTS results_label_processed_at_idx ON results (label, processed_at DESC);
CREATE INDEX IF NOT EXISTS results_source_processed_at_idx ON results (source, processed_at DESC);
CREATE INDEX IF NOT EXISTS results_author_processed_at_idx ON results (author, processed_at DESC);
CREATE INDEX IF NOT EXISTS results_created_at_idx ON results (created_at);
CREATE INDEX IF NOT EXISTS results_stored_at_idx ON results (stored_at DESC);
