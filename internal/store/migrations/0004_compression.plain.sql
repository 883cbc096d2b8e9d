-- Plain PostgreSQL has no native compression; nothing to do (kept so versions line up across variants).
SELECT 1;
