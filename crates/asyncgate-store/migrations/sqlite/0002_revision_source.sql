-- A revision freezes the contract as imported (its source), so that whether a design
-- changed is judged on the source and the edited values, never on the shape of the
-- parser's model. Revisions made before this keep an empty source.
ALTER TABLE revisions ADD COLUMN contract_source TEXT NOT NULL DEFAULT '';
