-- Version 3: when each change was written, so that a node can tell how late it applies one
-- (its change lag), by the database's clock alone: no two nodes' clocks are compared.
ALTER TABLE changes ADD COLUMN written_at timestamptz NOT NULL DEFAULT clock_timestamp();
