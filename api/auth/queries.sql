-- Operator sessions, login links, Google sign-in flows and the sender token check
-- (loaded by api/auth/__init__.py). Creating, listing and revoking tokens: vigil/queries.sql.

-- name: token_check
-- The id of the active token with this SHA-256 (null if unknown or revoked); records its use.
select vigil.token_check(%s);

-- name: login_link_use
-- Consumes a one-time login link by its SHA-256; the email it signs in, or null.
select vigil.login_link_use(%s);

-- name: session_create
-- A new session (keyed hash of its id, email, CSRF token, lifetime); false when the email
-- is not allowed.
select vigil.session_create(%s, %s, %s, %s);

-- name: session_delete
-- Ends the session with this keyed hash.
select vigil.session_delete(%s);

-- name: session_get
-- The operator, CSRF token and chosen time zone (null = the browser's) of a live session, by
-- the keyed hash of its id.
select s.email, s.csrf_token, u.time_zone
  from vigil.session_get(%s) s join vigil.users u on u.email = s.email;

-- name: user_set_time_zone
-- Sets (or with null/'' clears) the IANA zone the pages show times in for an operator.
select vigil.user_set_time_zone(%s, %s);

-- name: time_zones
-- The IANA zone names PostgreSQL knows (the choices of the Settings page), without the
-- legacy aliases in posix/, Etc/ and SystemV/ and the bare abbreviations.
select name from pg_timezone_names
 where name ~ '^[A-Z][A-Za-z_-]+/' and name !~ '^(posix|Etc|SystemV|US|Canada|Mexico|Brazil|Chile)/'
 order by name;

-- name: oauth_flow_start
-- Records a Google sign-in in progress: flow hash, state, nonce, PKCE verifier, the page to
-- return to, lifetime.
select vigil.oauth_flow_start(%s, %s, %s, %s, %s, %s);

-- name: oauth_flow_take
-- Consumes a sign-in in progress by its flow hash (one use).
select state, nonce, code_verifier, next_path from vigil.oauth_flow_take(%s);
