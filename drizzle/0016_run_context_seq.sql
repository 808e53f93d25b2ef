ALTER TABLE "workflow_run_nodes" ADD COLUMN "output_seq" integer;--> statement-breakpoint
ALTER TABLE "workflow_runs" ADD COLUMN "context_seq" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "workflow_runs" ADD COLUMN "output_seq" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "workflow_runs" ADD COLUMN "context_bytes" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
UPDATE "workflow_runs" SET "context_bytes" = octet_length("context"::text) WHERE "status" IN ('pending', 'running', 'paused', 'waiting');
