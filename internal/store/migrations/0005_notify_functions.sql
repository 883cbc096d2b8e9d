-- Trigger functions that NOTIFY fieldline_readings for rows other writers INSERT (the first field report's
-- `INSERT INTO readings`). The trigger itself is optional and created by fieldline-ingester when
-- postgres.notify_trigger is on. Sessions that set fieldline.writer = 'ingester' are skipped: the ingester sends
-- one NOTIFY per batch itself. Payload format: see internal/store/notify.go.
CREATE OR REPLACE FUNCTION fieldline_notify_statement() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    payload text;
    n bigint;
    tmin timestamptz;
    tmax timestamptz;
BEGIN
    IF current_setting('fieldline.writer', true) = 'ingester' THEN
        RETURN NULL;
    END IF;
    SELECT count(*), min(time), max(time) INTO n, tmin, tmax FROM fieldline_new_rows;
    IF n = 0 THEN
        RETURN NULL;
    END IF;
    payload := json_build_object('v', 1,
        'from', floor(extract(epoch FROM tmin) * 1000000)::bigint,
        'to',   floor(extract(epoch FROM tmax) * 1000000)::bigint,
        'n', n)::text;
    IF n <= 100 THEN
        SELECT json_build_object('v', 1,
            'from', floor(extract(epoch FROM tmin) * 1000000)::bigint,
            'to',   floor(extract(epoch FROM tmax) * 1000000)::bigint,
            'n', n,
            'rows', json_agg(json_build_array(floor(extract(epoch FROM time) * 1000000)::bigint,
                                              device, metric, sensor, value)))::text
          INTO payload
          FROM fieldline_new_rows;
        IF octet_length(payload) > 7900 THEN
            payload := json_build_object('v', 1,
                'from', floor(extract(epoch FROM tmin) * 1000000)::bigint,
                'to',   floor(extract(epoch FROM tmax) * 1000000)::bigint,
                'n', n)::text;
        END IF;
    END IF;
    PERFORM pg_notify('fieldline_readings', payload);
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION fieldline_notify_row() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    t bigint := floor(extract(epoch FROM NEW.time) * 1000000)::bigint;
BEGIN
    IF current_setting('fieldline.writer', true) = 'ingester' THEN
        RETURN NULL;
    END IF;
    PERFORM pg_notify('fieldline_readings', json_build_object('v', 1, 'from', t, 'to', t, 'n', 1,
        'rows', json_build_array(json_build_array(t, NEW.device, NEW.metric, NEW.sensor, NEW.value)))::text);
    RETURN NULL;
END $$;
