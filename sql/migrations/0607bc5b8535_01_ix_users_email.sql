-- Revision 0607bc5b8535: users are looked up by email at login and signup; one account per email.
CREATE UNIQUE INDEX CONCURRENTLY ix_users_email ON users (email);
