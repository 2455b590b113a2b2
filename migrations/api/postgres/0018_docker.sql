-- Docker packages: the registry credentials a build and the cells pull the image with (the
-- password is never shown back); docker droplets: the image pinned to its digest.
ALTER TABLE packages ADD COLUMN docker_username TEXT NOT NULL DEFAULT '';
ALTER TABLE packages ADD COLUMN docker_password TEXT NOT NULL DEFAULT '';
ALTER TABLE droplets ADD COLUMN image TEXT NOT NULL DEFAULT '';
