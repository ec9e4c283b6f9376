-- The writer's fence. Each writer that takes the lease bumps writer_epoch, under the head's
-- lock, before it reads the head; every append reads the epoch under that same lock and moves
-- the head only while the epoch is still its own. So a writer whose lease was lost (its
-- session died, another writer took over) either committed before the new writer read the
-- head, or cannot commit at all.
ALTER TABLE log_head ADD COLUMN writer_epoch BIGINT NOT NULL DEFAULT 0;
