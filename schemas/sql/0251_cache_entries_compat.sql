-- Read-only compatibility view for consumers written against the seeds' cache_entries (universes
-- stored as cache rows with universe_category, liquidity_filter, universe_metadata and
-- last_universe_update). One row per universe over the relational tables: type = '<category>_universe'
-- (e.g. etf_universe), name/key = the universe name, value = {"symbols": [...] in list order,
-- "count": n}. Read-only: writes go through update_universe().
CREATE VIEW cache_entries AS
SELECT u.id,
       u.category || '_universe' AS type,
       u.name,
       u.name AS key,
       jsonb_build_object(
         'symbols', coalesce((SELECT jsonb_agg(m.symbol ORDER BY m.ordinal)
                              FROM universe_members m WHERE m.universe_id = u.id), '[]'::jsonb),
         'count', u.symbol_count,
         'description', u.description) AS value,
       'DEFAULT'::text AS environment,
       u.category AS universe_category,
       u.liquidity_filter,
       u.metadata AS universe_metadata,
       u.last_universe_update,
       u.created_at,
       u.last_universe_update AS updated_at
FROM universes u
-- Grouping by the key changes no row and makes the view non-updatable (read-only for old consumers).
GROUP BY u.id;
