-- Views for SQL users: one row per galaxy with its release and survey names.

CREATE OR REPLACE VIEW galdb.catalog AS
SELECT g.galaxy_id, s.name AS survey, r.name AS release, g.source_id, g.ra, g.dec,
       g.bands, g.pixel_scale, g.shape, g.pixel_uri, g.pixel_member, g.pixel_index, g.props
FROM galdb.galaxies AS g
JOIN galdb.releases AS r USING (release_id)
JOIN galdb.surveys AS s USING (survey_id);
COMMENT ON VIEW galdb.catalog IS
    'Every galaxy with its survey and release names; catalog columns are in props (jsonb).';
