ALTER TABLE "refresh_tokens" ADD COLUMN "session_id" uuid;--> statement-breakpoint
CREATE INDEX "refresh_tokens_live_session" ON "refresh_tokens" USING btree ("session_id") WHERE revoked_at IS NULL;