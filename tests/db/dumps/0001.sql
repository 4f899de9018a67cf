--
-- PostgreSQL database dump
--

\restrict galdbschemadump

-- Dumped from database version 18.4
-- Dumped by pg_dump version 18.4

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET transaction_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: galdb; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA galdb;


--
-- Name: vector; Type: EXTENSION; Schema: -; Owner: -
--

CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public;


--
-- Name: EXTENSION vector; Type: COMMENT; Schema: -; Owner: -
--

COMMENT ON EXTENSION vector IS 'vector data type and ivfflat and hnsw access methods';


--
-- Name: angular_separation(double precision, double precision, double precision, double precision); Type: FUNCTION; Schema: galdb; Owner: -
--

CREATE FUNCTION galdb.angular_separation(ra1 double precision, dec1 double precision, ra2 double precision, dec2 double precision) RETURNS double precision
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$
    -- Vincenty's formula: well conditioned at every separation (0 to 180 degrees).
    SELECT atan2d(
        sqrt(power(cosd(dec2) * sind(ra2 - ra1), 2)
             + power(cosd(dec1) * sind(dec2) - sind(dec1) * cosd(dec2) * cosd(ra2 - ra1), 2)),
        sind(dec1) * sind(dec2) + cosd(dec1) * cosd(dec2) * cosd(ra2 - ra1))
$$;


--
-- Name: FUNCTION angular_separation(ra1 double precision, dec1 double precision, ra2 double precision, dec2 double precision); Type: COMMENT; Schema: galdb; Owner: -
--

COMMENT ON FUNCTION galdb.angular_separation(ra1 double precision, dec1 double precision, ra2 double precision, dec2 double precision) IS 'Great-circle separation in degrees between two (ra, dec) positions in degrees (Vincenty).';


--
-- Name: cone_search(double precision, double precision, double precision); Type: FUNCTION; Schema: galdb; Owner: -
--

CREATE FUNCTION galdb.cone_search(ra0 double precision, dec0 double precision, radius_deg double precision) RETURNS TABLE(galaxy_id bigint, separation_deg double precision)
    LANGUAGE plpgsql STABLE ROWS 100 PARALLEL SAFE
    AS $$
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


--
-- Name: FUNCTION cone_search(ra0 double precision, dec0 double precision, radius_deg double precision); Type: COMMENT; Schema: galdb; Owner: -
--

COMMENT ON FUNCTION galdb.cone_search(ra0 double precision, dec0 double precision, radius_deg double precision) IS 'Galaxies within radius_deg of (ra0, dec0), nearest first, with the exact separation in degrees.';


--
-- Name: cone_zone_ranges(double precision, double precision, double precision); Type: FUNCTION; Schema: galdb; Owner: -
--

CREATE FUNCTION galdb.cone_zone_ranges(ra0 double precision, dec0 double precision, radius_deg double precision) RETURNS TABLE(zone integer, ra_lo double precision, ra_hi double precision)
    LANGUAGE sql IMMUTABLE STRICT ROWS 8 PARALLEL SAFE
    AS $$
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


--
-- Name: FUNCTION cone_zone_ranges(ra0 double precision, dec0 double precision, radius_deg double precision); Type: COMMENT; Schema: galdb; Owner: -
--

COMMENT ON FUNCTION galdb.cone_zone_ranges(ra0 double precision, dec0 double precision, radius_deg double precision) IS 'The (zone, ra_lo, ra_hi) index ranges that cover a cone; used by galdb.cone_search.';


--
-- Name: zone_height(); Type: FUNCTION; Schema: galdb; Owner: -
--

CREATE FUNCTION galdb.zone_height() RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$SELECT 0.05::float8$$;


--
-- Name: zone_of(double precision); Type: FUNCTION; Schema: galdb; Owner: -
--

CREATE FUNCTION galdb.zone_of(declination double precision) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$SELECT floor((declination + 90.0) / galdb.zone_height())::integer$$;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: galaxies; Type: TABLE; Schema: galdb; Owner: -
--

CREATE TABLE galdb.galaxies (
    galaxy_id bigint NOT NULL,
    release_id integer NOT NULL,
    source_id text NOT NULL COLLATE pg_catalog."C",
    ra double precision,
    "dec" double precision,
    zone integer GENERATED ALWAYS AS ((floor((("dec" + (90.0)::double precision) / (0.05)::double precision)))::integer) STORED,
    pixel_uri text,
    pixel_member text,
    pixel_index bigint,
    bands text,
    pixel_scale real,
    shape integer[],
    props jsonb DEFAULT '{}'::jsonb NOT NULL,
    ingest_run_id bigint,
    CONSTRAINT galaxies_check CHECK (((ra IS NULL) = ("dec" IS NULL))),
    CONSTRAINT galaxies_dec_check CHECK ((("dec" >= ('-90'::integer)::double precision) AND ("dec" <= (90)::double precision))),
    CONSTRAINT galaxies_ra_check CHECK (((ra >= (0)::double precision) AND (ra < (360)::double precision)))
);


--
-- Name: releases; Type: TABLE; Schema: galdb; Owner: -
--

CREATE TABLE galdb.releases (
    release_id integer NOT NULL,
    survey_id integer NOT NULL,
    name text NOT NULL,
    description text DEFAULT ''::text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: surveys; Type: TABLE; Schema: galdb; Owner: -
--

CREATE TABLE galdb.surveys (
    survey_id integer NOT NULL,
    name text NOT NULL,
    description text DEFAULT ''::text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: catalog; Type: VIEW; Schema: galdb; Owner: -
--

CREATE VIEW galdb.catalog AS
 SELECT g.galaxy_id,
    s.name AS survey,
    r.name AS release,
    g.source_id,
    g.ra,
    g."dec",
    g.bands,
    g.pixel_scale,
    g.shape,
    g.pixel_uri,
    g.pixel_member,
    g.pixel_index,
    g.props
   FROM ((galdb.galaxies g
     JOIN galdb.releases r USING (release_id))
     JOIN galdb.surveys s USING (survey_id));


--
-- Name: VIEW catalog; Type: COMMENT; Schema: galdb; Owner: -
--

COMMENT ON VIEW galdb.catalog IS 'Every galaxy with its survey and release names; catalog columns are in props (jsonb).';


--
-- Name: galaxies_galaxy_id_seq; Type: SEQUENCE; Schema: galdb; Owner: -
--

CREATE SEQUENCE galdb.galaxies_galaxy_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: galaxies_galaxy_id_seq; Type: SEQUENCE OWNED BY; Schema: galdb; Owner: -
--

ALTER SEQUENCE galdb.galaxies_galaxy_id_seq OWNED BY galdb.galaxies.galaxy_id;


--
-- Name: ingest_files; Type: TABLE; Schema: galdb; Owner: -
--

CREATE TABLE galdb.ingest_files (
    release_id integer NOT NULL,
    path text NOT NULL,
    sha256 text NOT NULL,
    size_bytes bigint NOT NULL,
    rows_done bigint DEFAULT 0 NOT NULL,
    completed boolean DEFAULT false NOT NULL,
    run_id bigint,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: ingest_runs; Type: TABLE; Schema: galdb; Owner: -
--

CREATE TABLE galdb.ingest_runs (
    run_id bigint NOT NULL,
    release_id integer NOT NULL,
    source text NOT NULL,
    format text NOT NULL,
    options jsonb DEFAULT '{}'::jsonb NOT NULL,
    status text DEFAULT 'running'::text NOT NULL,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    finished_at timestamp with time zone,
    n_files bigint DEFAULT 0 NOT NULL,
    n_inserted bigint DEFAULT 0 NOT NULL,
    n_present bigint DEFAULT 0 NOT NULL,
    n_quarantined bigint DEFAULT 0 NOT NULL,
    message text,
    CONSTRAINT ingest_runs_status_check CHECK ((status = ANY (ARRAY['running'::text, 'completed'::text, 'failed'::text, 'interrupted'::text])))
);


--
-- Name: ingest_runs_run_id_seq; Type: SEQUENCE; Schema: galdb; Owner: -
--

CREATE SEQUENCE galdb.ingest_runs_run_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: ingest_runs_run_id_seq; Type: SEQUENCE OWNED BY; Schema: galdb; Owner: -
--

ALTER SEQUENCE galdb.ingest_runs_run_id_seq OWNED BY galdb.ingest_runs.run_id;


--
-- Name: quarantine; Type: TABLE; Schema: galdb; Owner: -
--

CREATE TABLE galdb.quarantine (
    quarantine_id bigint NOT NULL,
    run_id bigint NOT NULL,
    release_id integer NOT NULL,
    source text NOT NULL,
    item text DEFAULT ''::text NOT NULL,
    code text NOT NULL,
    reason text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: quarantine_quarantine_id_seq; Type: SEQUENCE; Schema: galdb; Owner: -
--

CREATE SEQUENCE galdb.quarantine_quarantine_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: quarantine_quarantine_id_seq; Type: SEQUENCE OWNED BY; Schema: galdb; Owner: -
--

ALTER SEQUENCE galdb.quarantine_quarantine_id_seq OWNED BY galdb.quarantine.quarantine_id;


--
-- Name: releases_release_id_seq; Type: SEQUENCE; Schema: galdb; Owner: -
--

CREATE SEQUENCE galdb.releases_release_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: releases_release_id_seq; Type: SEQUENCE OWNED BY; Schema: galdb; Owner: -
--

ALTER SEQUENCE galdb.releases_release_id_seq OWNED BY galdb.releases.release_id;


--
-- Name: surveys_survey_id_seq; Type: SEQUENCE; Schema: galdb; Owner: -
--

CREATE SEQUENCE galdb.surveys_survey_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: surveys_survey_id_seq; Type: SEQUENCE OWNED BY; Schema: galdb; Owner: -
--

ALTER SEQUENCE galdb.surveys_survey_id_seq OWNED BY galdb.surveys.survey_id;


--
-- Name: alembic_version; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.alembic_version (
    version_num character varying(32) NOT NULL
);


--
-- Name: galaxies galaxy_id; Type: DEFAULT; Schema: galdb; Owner: -
--

ALTER TABLE ONLY galdb.galaxies ALTER COLUMN galaxy_id SET DEFAULT nextval('galdb.galaxies_galaxy_id_seq'::regclass);


--
-- Name: ingest_runs run_id; Type: DEFAULT; Schema: galdb; Owner: -
--

ALTER TABLE ONLY galdb.ingest_runs ALTER COLUMN run_id SET DEFAULT nextval('galdb.ingest_runs_run_id_seq'::regclass);


--
-- Name: quarantine quarantine_id; Type: DEFAULT; Schema: galdb; Owner: -
--

ALTER TABLE ONLY galdb.quarantine ALTER COLUMN quarantine_id SET DEFAULT nextval('galdb.quarantine_quarantine_id_seq'::regclass);


--
-- Name: releases release_id; Type: DEFAULT; Schema: galdb; Owner: -
--

ALTER TABLE ONLY galdb.releases ALTER COLUMN release_id SET DEFAULT nextval('galdb.releases_release_id_seq'::regclass);


--
-- Name: surveys survey_id; Type: DEFAULT; Schema: galdb; Owner: -
--

ALTER TABLE ONLY galdb.surveys ALTER COLUMN survey_id SET DEFAULT nextval('galdb.surveys_survey_id_seq'::regclass);


--
-- Data for Name: galaxies; Type: TABLE DATA; Schema: galdb; Owner: -
--

COPY galdb.galaxies (galaxy_id, release_id, source_id, ra, "dec", pixel_uri, pixel_member, pixel_index, bands, pixel_scale, shape, props, ingest_run_id) FROM stdin;
1	1	g0001	150.1	2.2	file:///data/mock-1/g0001.fits	\N	\N	grz	0.262	{3,64,64}	{"mag_r": 17.5, "morph_class": "spiral"}	1
2	1	g0002	359.999	-89.9	file:///data/mock-1/g0002.fits	\N	\N	grz	0.262	{3,64,64}	{"mag_r": 18.1, "morph_class": "elliptical"}	1
3	1	g0003	0	45	file:///data/mock-1/images.h5	images	7	grz	0.262	{3,64,64}	{}	1
4	1	g0004	\N	\N	\N	\N	\N	\N	\N	\N	{"mag_r": 19.0}	1
\.


--
-- Data for Name: ingest_files; Type: TABLE DATA; Schema: galdb; Owner: -
--

COPY galdb.ingest_files (release_id, path, sha256, size_bytes, rows_done, completed, run_id, updated_at) FROM stdin;
1	/data/mock-1/catalog.csv	abababababababababababababababababababababababababababababababab	1234	5	t	1	2026-11-28 12:02:00+00
\.


--
-- Data for Name: ingest_runs; Type: TABLE DATA; Schema: galdb; Owner: -
--

COPY galdb.ingest_runs (run_id, release_id, source, format, options, status, started_at, finished_at, n_files, n_inserted, n_present, n_quarantined, message) FROM stdin;
1	1	/data/mock-1/catalog.csv	catalog	{"id_col": "source_id"}	completed	2026-11-28 12:01:00+00	2026-11-28 12:02:00+00	4	4	0	1	\N
\.


--
-- Data for Name: quarantine; Type: TABLE DATA; Schema: galdb; Owner: -
--

COPY galdb.quarantine (quarantine_id, run_id, release_id, source, item, code, reason, created_at) FROM stdin;
1	1	1	/data/mock-1/catalog.csv	row 6	coord_out_of_range	dec 91.0 is outside [-90, 90]	2026-11-28 12:01:30+00
\.


--
-- Data for Name: releases; Type: TABLE DATA; Schema: galdb; Owner: -
--

COPY galdb.releases (release_id, survey_id, name, description, created_at) FROM stdin;
1	1	mock-1	a small mock release	2026-11-28 12:00:00+00
\.


--
-- Data for Name: surveys; Type: TABLE DATA; Schema: galdb; Owner: -
--

COPY galdb.surveys (survey_id, name, description, created_at) FROM stdin;
1	galdb-sim	simulated survey	2026-11-28 12:00:00+00
\.


--
-- Data for Name: alembic_version; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.alembic_version (version_num) FROM stdin;
0001
\.


--
-- Name: galaxies_galaxy_id_seq; Type: SEQUENCE SET; Schema: galdb; Owner: -
--

SELECT pg_catalog.setval('galdb.galaxies_galaxy_id_seq', 4, true);


--
-- Name: ingest_runs_run_id_seq; Type: SEQUENCE SET; Schema: galdb; Owner: -
--

SELECT pg_catalog.setval('galdb.ingest_runs_run_id_seq', 1, true);


--
-- Name: quarantine_quarantine_id_seq; Type: SEQUENCE SET; Schema: galdb; Owner: -
--

SELECT pg_catalog.setval('galdb.quarantine_quarantine_id_seq', 1, true);


--
-- Name: releases_release_id_seq; Type: SEQUENCE SET; Schema: galdb; Owner: -
--

SELECT pg_catalog.setval('galdb.releases_release_id_seq', 1, true);


--
-- Name: surveys_survey_id_seq; Type: SEQUENCE SET; Schema: galdb; Owner: -
--

SELECT pg_catalog.setval('galdb.surveys_survey_id_seq', 1, true);


--
-- Name: galaxies galaxies_pkey; Type: CONSTRAINT; Schema: galdb; Owner: -
--

ALTER TABLE ONLY galdb.galaxies
    ADD CONSTRAINT galaxies_pkey PRIMARY KEY (galaxy_id);


--
-- Name: galaxies galaxies_release_source_key; Type: CONSTRAINT; Schema: galdb; Owner: -
--

ALTER TABLE ONLY galdb.galaxies
    ADD CONSTRAINT galaxies_release_source_key UNIQUE (release_id, source_id);


--
-- Name: ingest_files ingest_files_pkey; Type: CONSTRAINT; Schema: galdb; Owner: -
--

ALTER TABLE ONLY galdb.ingest_files
    ADD CONSTRAINT ingest_files_pkey PRIMARY KEY (release_id, path, sha256);


--
-- Name: ingest_runs ingest_runs_pkey; Type: CONSTRAINT; Schema: galdb; Owner: -
--

ALTER TABLE ONLY galdb.ingest_runs
    ADD CONSTRAINT ingest_runs_pkey PRIMARY KEY (run_id);


--
-- Name: quarantine quarantine_pkey; Type: CONSTRAINT; Schema: galdb; Owner: -
--

ALTER TABLE ONLY galdb.quarantine
    ADD CONSTRAINT quarantine_pkey PRIMARY KEY (quarantine_id);


--
-- Name: releases releases_name_key; Type: CONSTRAINT; Schema: galdb; Owner: -
--

ALTER TABLE ONLY galdb.releases
    ADD CONSTRAINT releases_name_key UNIQUE (name);


--
-- Name: releases releases_pkey; Type: CONSTRAINT; Schema: galdb; Owner: -
--

ALTER TABLE ONLY galdb.releases
    ADD CONSTRAINT releases_pkey PRIMARY KEY (release_id);


--
-- Name: surveys surveys_name_key; Type: CONSTRAINT; Schema: galdb; Owner: -
--

ALTER TABLE ONLY galdb.surveys
    ADD CONSTRAINT surveys_name_key UNIQUE (name);


--
-- Name: surveys surveys_pkey; Type: CONSTRAINT; Schema: galdb; Owner: -
--

ALTER TABLE ONLY galdb.surveys
    ADD CONSTRAINT surveys_pkey PRIMARY KEY (survey_id);


--
-- Name: alembic_version alembic_version_pkc; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alembic_version
    ADD CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num);


--
-- Name: galaxies_zone_ra_idx; Type: INDEX; Schema: galdb; Owner: -
--

CREATE INDEX galaxies_zone_ra_idx ON galdb.galaxies USING btree (zone, ra);


--
-- Name: quarantine_run_idx; Type: INDEX; Schema: galdb; Owner: -
--

CREATE INDEX quarantine_run_idx ON galdb.quarantine USING btree (run_id);


--
-- Name: galaxies galaxies_release_id_fkey; Type: FK CONSTRAINT; Schema: galdb; Owner: -
--

ALTER TABLE ONLY galdb.galaxies
    ADD CONSTRAINT galaxies_release_id_fkey FOREIGN KEY (release_id) REFERENCES galdb.releases(release_id);


--
-- Name: ingest_files ingest_files_release_id_fkey; Type: FK CONSTRAINT; Schema: galdb; Owner: -
--

ALTER TABLE ONLY galdb.ingest_files
    ADD CONSTRAINT ingest_files_release_id_fkey FOREIGN KEY (release_id) REFERENCES galdb.releases(release_id);


--
-- Name: ingest_files ingest_files_run_id_fkey; Type: FK CONSTRAINT; Schema: galdb; Owner: -
--

ALTER TABLE ONLY galdb.ingest_files
    ADD CONSTRAINT ingest_files_run_id_fkey FOREIGN KEY (run_id) REFERENCES galdb.ingest_runs(run_id);


--
-- Name: ingest_runs ingest_runs_release_id_fkey; Type: FK CONSTRAINT; Schema: galdb; Owner: -
--

ALTER TABLE ONLY galdb.ingest_runs
    ADD CONSTRAINT ingest_runs_release_id_fkey FOREIGN KEY (release_id) REFERENCES galdb.releases(release_id);


--
-- Name: quarantine quarantine_release_id_fkey; Type: FK CONSTRAINT; Schema: galdb; Owner: -
--

ALTER TABLE ONLY galdb.quarantine
    ADD CONSTRAINT quarantine_release_id_fkey FOREIGN KEY (release_id) REFERENCES galdb.releases(release_id);


--
-- Name: quarantine quarantine_run_id_fkey; Type: FK CONSTRAINT; Schema: galdb; Owner: -
--

ALTER TABLE ONLY galdb.quarantine
    ADD CONSTRAINT quarantine_run_id_fkey FOREIGN KEY (run_id) REFERENCES galdb.ingest_runs(run_id);


--
-- Name: releases releases_survey_id_fkey; Type: FK CONSTRAINT; Schema: galdb; Owner: -
--

ALTER TABLE ONLY galdb.releases
    ADD CONSTRAINT releases_survey_id_fkey FOREIGN KEY (survey_id) REFERENCES galdb.surveys(survey_id);


--
-- Name: SCHEMA galdb; Type: ACL; Schema: -; Owner: -
--

GRANT USAGE ON SCHEMA galdb TO galdb_reader;


--
-- Name: TABLE galaxies; Type: ACL; Schema: galdb; Owner: -
--

GRANT SELECT ON TABLE galdb.galaxies TO galdb_reader;


--
-- Name: TABLE releases; Type: ACL; Schema: galdb; Owner: -
--

GRANT SELECT ON TABLE galdb.releases TO galdb_reader;


--
-- Name: TABLE surveys; Type: ACL; Schema: galdb; Owner: -
--

GRANT SELECT ON TABLE galdb.surveys TO galdb_reader;


--
-- Name: TABLE catalog; Type: ACL; Schema: galdb; Owner: -
--

GRANT SELECT ON TABLE galdb.catalog TO galdb_reader;


--
-- Name: TABLE ingest_files; Type: ACL; Schema: galdb; Owner: -
--

GRANT SELECT ON TABLE galdb.ingest_files TO galdb_reader;


--
-- Name: TABLE ingest_runs; Type: ACL; Schema: galdb; Owner: -
--

GRANT SELECT ON TABLE galdb.ingest_runs TO galdb_reader;


--
-- Name: TABLE quarantine; Type: ACL; Schema: galdb; Owner: -
--

GRANT SELECT ON TABLE galdb.quarantine TO galdb_reader;


--
-- Name: DEFAULT PRIVILEGES FOR TABLES; Type: DEFAULT ACL; Schema: galdb; Owner: -
--

ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA galdb GRANT SELECT ON TABLES TO galdb_reader;


--
-- PostgreSQL database dump complete
--

\unrestrict galdbschemadump

