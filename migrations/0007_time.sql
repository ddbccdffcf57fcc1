-- One unit for every time that crosses the store's boundary: unix
-- microseconds (BIGINT). Columns stay TIMESTAMPTZ; these two functions are
-- the only conversions, exact to the microsecond (no float round trip).
CREATE FUNCTION tapvault_micros(t TIMESTAMPTZ) RETURNS BIGINT
    LANGUAGE SQL IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT (extract(epoch FROM t) * 1000000)::BIGINT $$;

-- NULL means "now": imports pass the original time, live pushes pass NULL.
CREATE FUNCTION tapvault_time(us BIGINT) RETURNS TIMESTAMPTZ
    LANGUAGE SQL STABLE PARALLEL SAFE
    AS $$ SELECT COALESCE(TIMESTAMPTZ 'epoch' + us * INTERVAL '1 microsecond', now()) $$;
