-- Generated logins are a base and an optional number (nmartin, nmartin2, …).
-- This index finds, for one base, its highest-numbered login in one descent
-- (the longest number first, then the greatest), so that handing out the next
-- number costs the same in a directory of a thousand or of five million
-- accounts. Logins are stored lowercase (CHECK on users.login).
CREATE INDEX users_login_base ON users (rtrim(login, '0123456789'), length(login), login);
