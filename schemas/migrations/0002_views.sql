-- Counts per label per minute, for dashboards and the `results` command.
CREATE OR REPLACE VIEW label_counts_per_minute AS
SELECT date_trunc('minute', processed_at) AS minute,
       label,
       count(*)                           AS posts,
       avg(confidence)::real              AS mean_confidence
FROM results
GROUP BY 1, 2;

-- The most recent results, newest first.
CREATE OR REPLACE VIEW latest_results AS
SELECT post_id, label, positive_probability, confidence, text, author, source,
       created_at, processed_at, model_version, cached
FROM results
ORDER BY processed_at DESC
LIMIT 1000;

-- Sentiment share per source per hour.
CREATE OR REPLACE VIEW sentiment_share_per_hour AS
SELECT date_trunc('hour', processed_at)                              AS hour,
       coalesce(source, 'unknown')                                   AS source,
       count(*)                                                      AS posts,
       avg((label = 'negative')::int)::real                          AS negative_share,
       avg((label = 'neutral')::int)::real                           AS neutral_share,
       avg((label = 'positive')::int)::real                          AS positive_share
FROM results
GROUP BY 1, 2;
