ALTER TABLE "organizations" ADD COLUMN "retention_seconds" integer;--> statement-breakpoint
CREATE INDEX "webhook_deliveries_event" ON "webhook_deliveries" USING btree ("event_id");--> statement-breakpoint
CREATE INDEX "workflow_runs_finished" ON "workflow_runs" USING btree ("finished_at") WHERE status IN ('completed', 'failed', 'cancelled');