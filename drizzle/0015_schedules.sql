CREATE TABLE "schedule_fires" (
	"schedule_id" uuid NOT NULL,
	"fire_at" timestamp with time zone NOT NULL,
	"outcome" text NOT NULL,
	"run_id" uuid,
	"cancelled_run_id" uuid,
	"error" text DEFAULT '' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "schedule_fires_schedule_id_fire_at_pk" PRIMARY KEY("schedule_id","fire_at")
);
--> statement-breakpoint
CREATE TABLE "schedules" (
	"id" uuid PRIMARY KEY NOT NULL,
	"organization_id" uuid NOT NULL,
	"team_id" uuid,
	"name" text NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"workflow_name" text NOT NULL,
	"workflow_version" integer,
	"input" jsonb NOT NULL,
	"cron" text DEFAULT '' NOT NULL,
	"timezone" text DEFAULT 'UTC' NOT NULL,
	"start_at" timestamp with time zone,
	"enabled" boolean DEFAULT true NOT NULL,
	"overlap_policy" text NOT NULL,
	"catch_up_policy" text NOT NULL,
	"catch_up_limit" integer NOT NULL,
	"next_fire_at" timestamp with time zone,
	"last_fire_at" timestamp with time zone,
	"last_run_id" uuid,
	"queued_fires" integer DEFAULT 0 NOT NULL,
	"created_by" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "schedules_name" UNIQUE("organization_id","name")
);
--> statement-breakpoint
ALTER TABLE "schedule_fires" ADD CONSTRAINT "schedule_fires_schedule_id_schedules_id_fk" FOREIGN KEY ("schedule_id") REFERENCES "public"."schedules"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "schedules" ADD CONSTRAINT "schedules_organization_id_organizations_id_fk" FOREIGN KEY ("organization_id") REFERENCES "public"."organizations"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "schedules_due" ON "schedules" USING btree ("next_fire_at") WHERE enabled AND next_fire_at IS NOT NULL;--> statement-breakpoint
CREATE INDEX "schedules_queued" ON "schedules" USING btree ("id") WHERE queued_fires > 0;