/// Numbered migrations of the PostgreSQL store, each a list of statements run in one
/// transaction. A migration, once released, is never edited: add the next one. Migration 1 is
/// the SQLite store's schema as of its migration 10, in PostgreSQL's types: the same tables,
/// columns and keys, so one contract holds for both.
enum PostgresSchema {
    static let migrations: [[String]] = [
        [
            "CREATE TABLE secrets(name TEXT PRIMARY KEY, value BYTEA NOT NULL, valid_until BIGINT)",
            "CREATE TABLE catalog_revision(id INT PRIMARY KEY CHECK (id = 1), value BIGINT NOT NULL)",
            "INSERT INTO catalog_revision(id, value) VALUES (1, 0)",
            "CREATE TABLE advertisers(id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE, created_at BIGINT NOT NULL)",
            """
            CREATE TABLE advertiser_keys(
                id BIGSERIAL PRIMARY KEY, advertiser_id BIGINT NOT NULL REFERENCES advertisers(id), key_hash TEXT NOT NULL UNIQUE,
                created_at BIGINT NOT NULL, revoked_at BIGINT)
            """,
            "CREATE INDEX advertiser_keys_by_advertiser ON advertiser_keys(advertiser_id)",
            """
            CREATE TABLE campaigns(
                id BIGSERIAL PRIMARY KEY, advertiser_id BIGINT NOT NULL REFERENCES advertisers(id), name TEXT NOT NULL,
                objective TEXT NOT NULL, bid_micros BIGINT NOT NULL, daily_budget_micros BIGINT NOT NULL,
                total_budget_micros BIGINT NOT NULL, start_at BIGINT, end_at BIGINT, targeting TEXT NOT NULL,
                frequency_caps TEXT NOT NULL, status TEXT NOT NULL, created_at BIGINT NOT NULL, paused_at BIGINT,
                max_conversion_value_micros BIGINT NOT NULL, revision BIGINT NOT NULL, pacing TEXT NOT NULL DEFAULT 'standard')
            """,
            "CREATE INDEX campaigns_by_advertiser ON campaigns(advertiser_id)",
            "CREATE INDEX campaigns_by_revision ON campaigns(revision)",
            """
            CREATE TABLE ads(
                id BIGSERIAL PRIMARY KEY, campaign_id BIGINT NOT NULL REFERENCES campaigns(id), format TEXT NOT NULL,
                media_urls TEXT NOT NULL, caption TEXT NOT NULL, company TEXT NOT NULL, product TEXT NOT NULL,
                description TEXT NOT NULL, embedding BYTEA, embedding_status TEXT NOT NULL, embedding_error TEXT,
                image_embedding BYTEA, status TEXT NOT NULL, created_at BIGINT NOT NULL, revision BIGINT NOT NULL)
            """,
            "CREATE INDEX ads_by_campaign ON ads(campaign_id)",
            "CREATE INDEX ads_by_revision ON ads(revision)",
            "CREATE INDEX ads_pending_embedding ON ads(id) WHERE embedding_status = 'pending'",
            """
            CREATE TABLE users(
                id TEXT PRIMARY KEY, age BIGINT, gender TEXT, country TEXT, language TEXT, interests TEXT NOT NULL,
                activity_vector BYTEA, activity_vector_at BIGINT, recent_topics TEXT, personalization BOOLEAN NOT NULL DEFAULT TRUE)
            """,
            """
            CREATE TABLE activities(
                id BIGSERIAL PRIMARY KEY, user_id TEXT NOT NULL, type TEXT NOT NULL, topics TEXT NOT NULL, text TEXT,
                ad_id BIGINT, seconds DOUBLE PRECISION, at BIGINT NOT NULL)
            """,
            "CREATE INDEX activities_by_user ON activities(user_id, at)",
            "CREATE TABLE cursors(name TEXT PRIMARY KEY, value BIGINT NOT NULL)",
            """
            CREATE TABLE events(
                placement_key TEXT NOT NULL, type TEXT NOT NULL, user_id TEXT NOT NULL, ad_id BIGINT NOT NULL,
                campaign_id BIGINT NOT NULL, decision_id TEXT NOT NULL, price_micros BIGINT NOT NULL,
                charged_micros BIGINT NOT NULL, value_micros BIGINT, at BIGINT NOT NULL, invalid_reason TEXT,
                PRIMARY KEY(placement_key, type))
            """,
            "CREATE INDEX events_by_type_time ON events(type, at)",
            "CREATE INDEX events_by_user ON events(user_id, type, at)",
            "CREATE INDEX events_by_campaign_time ON events(campaign_id, at)",
            """
            CREATE TABLE ad_daily(
                ad_id BIGINT NOT NULL, day BIGINT NOT NULL, impressions BIGINT NOT NULL DEFAULT 0, clicks BIGINT NOT NULL DEFAULT 0,
                conversions BIGINT NOT NULL DEFAULT 0, hides BIGINT NOT NULL DEFAULT 0, spend_micros BIGINT NOT NULL DEFAULT 0,
                invalid_clicks BIGINT NOT NULL DEFAULT 0, PRIMARY KEY(ad_id, day))
            """,
            """
            CREATE TABLE campaign_daily(
                campaign_id BIGINT NOT NULL, day BIGINT NOT NULL, impressions BIGINT NOT NULL DEFAULT 0, clicks BIGINT NOT NULL DEFAULT 0,
                conversions BIGINT NOT NULL DEFAULT 0, hides BIGINT NOT NULL DEFAULT 0, spend_micros BIGINT NOT NULL DEFAULT 0,
                invalid_clicks BIGINT NOT NULL DEFAULT 0, PRIMARY KEY(campaign_id, day))
            """,
            "CREATE INDEX campaign_daily_by_day ON campaign_daily(day)",
        ]
    ]
}
