CREATE TABLE "budget_ledger" (
	"scope_key" text NOT NULL,
	"period" text NOT NULL,
	"period_start" text NOT NULL,
	"committed_nano_usd" bigint DEFAULT 0 NOT NULL,
	"exceeded_at" timestamp with time zone,
	CONSTRAINT "budget_ledger_key" UNIQUE("scope_key","period","period_start")
);
--> statement-breakpoint
CREATE TABLE "policies" (
	"scope_key" text PRIMARY KEY NOT NULL,
	"organization_id" uuid NOT NULL,
	"team_id" uuid,
	"allowed_providers" text[] DEFAULT '{}'::text[] NOT NULL,
	"allowed_models" text[] DEFAULT '{}'::text[] NOT NULL,
	"max_run_cost_nano_usd" bigint,
	"requests_per_minute_per_key" integer,
	"price_overrides" jsonb,
	"policy_updated_at" timestamp with time zone,
	"policy_updated_by" uuid,
	"daily_limit_nano_usd" bigint,
	"monthly_limit_nano_usd" bigint,
	"budget_updated_at" timestamp with time zone,
	"budget_updated_by" uuid
);
--> statement-breakpoint
CREATE TABLE "rate_limits" (
	"api_key_id" uuid PRIMARY KEY NOT NULL,
	"window_start" timestamp with time zone NOT NULL,
	"count" integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE "usage_records" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "usage_records_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"organization_id" uuid NOT NULL,
	"team_id" uuid,
	"principal_id" uuid,
	"api_key_id" uuid,
	"run_id" uuid,
	"node_key" text,
	"provider" text NOT NULL,
	"model" text NOT NULL,
	"operation" text NOT NULL,
	"status" text NOT NULL,
	"input_tokens" bigint DEFAULT 0 NOT NULL,
	"output_tokens" bigint DEFAULT 0 NOT NULL,
	"cached_input_tokens" bigint DEFAULT 0 NOT NULL,
	"cache_write_tokens" bigint DEFAULT 0 NOT NULL,
	"estimated_nano_usd" bigint,
	"actual_nano_usd" bigint,
	"price_table" text NOT NULL,
	"charges" jsonb,
	"error_code" text,
	"latency_ms" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"settled_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "policies" ADD CONSTRAINT "policies_organization_id_organizations_id_fk" FOREIGN KEY ("organization_id") REFERENCES "public"."organizations"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "usage_records_org_created" ON "usage_records" USING btree ("organization_id","created_at");--> statement-breakpoint
CREATE INDEX "usage_records_run" ON "usage_records" USING btree ("run_id") WHERE run_id IS NOT NULL;