-- Cone search on the zone index of galdb.galaxies.
--
-- The sky is cut into declination zones of galdb.zone_height() degrees; galaxies carry their
-- zone (a stored generated column) and a btree on (zone, ra) answers "zone = z AND ra BETWEEN a
-- AND b" with one index range scan per zone. A cone becomes a handful of such ranges (two per
-- zone where it crosses RA = 0/360, the whole circle where it contains a pole), and the exact
-- great-circle separation then filters the candidates. This is the Zones algorithm of Gray,
-- Szalay et al. (2006, MSR-TR-2006-52), chosen over HEALPix because it needs no extension and
-- the whole search is plain SQL that psql users can call.

CREATE OR REPLACE FUNCTION galdb.angular_separation(
    ra1 double precision, dec1 double precision, ra2 double precision, dec2 double precision)
RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    -- Vincenty's formula: well conditioned at every separation (0 to 180 degrees).
    SELECT atan2d(
        sqrt(power(cosd(dec2) * sind(ra2 - ra1), 2)
             + power(cosd(dec1) * sind(dec2) - sind(dec1) * cosd(dec2) * cosd(ra2 - ra1), 2)),
        sind(dec1) * sind(dec2) + cosd(dec1) * cosd(dec2) * cosd(ra2 - ra1))
$$;
COMMENT ON FUNCTION galdb.angular_separation IS
    'Great-circle separation in degrees between two (ra, dec) positions in degrees (Vincenty).';

CREATE OR REPLACE FUNCTION galdb.cone_zone_ranges(
    ra0 double precision, dec0 double precision, radius_deg double precision)
RETURNS TABLE(zone integer, ra_lo double precision, ra_hi double precision)
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE ROWS 8 AS $$
    WITH c AS (
        SELECT ra0 - 360.0 * floor(ra0 / 360.0) AS ra,
               -- widest RA offset of a small circle not containing a pole: sin a = sin r / cos d;
               -- a tiny margin keeps points on the boundary from being lost to rounding.
               CASE WHEN radius_deg >= 90 OR abs(dec0) + radius_deg >= 90 - 1e-9 THEN 180.0
                    ELSE least(180.0, asind(least(1.0, sind(radius_deg) / cosd(dec0)))
                                      * (1 + 1e-9) + 1e-9)
               END AS alpha,
               galdb.zone_of(greatest(dec0 - radius_deg - 1e-9, -90)) AS z_lo,
               galdb.zone_of(least(dec0 + radius_deg + 1e-9, 90)) AS z_hi
    ), intervals AS (
        SELECT 0.0::float8 AS lo, 360.0::float8 AS hi FROM c WHERE alpha >= 180
        UNION ALL
        SELECT greatest(ra - alpha, 0), least(ra + alpha, 360) FROM c WHERE alpha < 180
        UNION ALL  -- the part that wrapped below RA = 0
        SELECT ra - alpha + 360, 360 FROM c WHERE alpha < 180 AND ra - alpha < 0
        UNION ALL  -- the part that wrapped above RA = 360
        SELECT 0, ra + alpha - 360 FROM c WHERE alpha < 180 AND ra + alpha > 360
    )
    SELECT z, i.lo, i.hi FROM c, generate_series(c.z_lo, c.z_hi) AS z, intervals i
$$;
COMMENT ON FUNCTION galdb.cone_zone_ranges IS
    'The (zone, ra_lo, ra_hi) index ranges that cover a cone; used by galdb.cone_search.';

CREATE OR REPLACE FUNCTION galdb.cone_search(
    ra0 double precision, dec0 double precision, radius_deg double precision)
RETURNS TABLE(galaxy_id bigint, separation_deg double precision)
LANGUAGE plpgsql STABLE PARALLEL SAFE ROWS 100 AS $$
BEGIN
    IF ra0 IS NULL OR dec0 IS NULL OR radius_deg IS NULL
       OR dec0 < -90 OR dec0 > 90 OR radius_deg <= 0 OR radius_deg > 180
       OR ra0 = 'NaN' OR ra0 IN ('Infinity', '-Infinity') THEN
        RAISE EXCEPTION 'cone_search: need finite ra, dec in [-90, 90] and 0 < radius <= 180 deg'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
        SELECT g.galaxy_id, s.sep
        FROM galdb.cone_zone_ranges(ra0, dec0, radius_deg) AS z
        JOIN galdb.galaxies AS g ON g.zone = z.zone AND g.ra BETWEEN z.ra_lo AND z.ra_hi
        CROSS JOIN LATERAL (
            SELECT galdb.angular_separation(ra0, dec0, g.ra, g.dec) AS sep) AS s
        WHERE s.sep <= radius_deg
        ORDER BY s.sep, g.galaxy_id;
END
$$;
COMMENT ON FUNCTION galdb.cone_search IS
    'Galaxies within radius_deg of (ra0, dec0), nearest first, with the exact separation in degrees.';
